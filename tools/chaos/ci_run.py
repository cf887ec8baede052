"""What the CI-sized swarm tests (chaos_ci.py, tools/attack/attack_ci.py) share: PASS/FAIL
checks and one run of a swarm that always cleans up, writes its timeline and keeps its folder
when it failed."""
import json
import os
import shutil


class Failed(Exception):
    pass


def expect(ok, what):
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    if not ok:
        raise Failed(what)


def run_and_report(swarm, folder, keep, body):
    """Runs body(swarm); returns the process exit code (0: every check passed)."""
    ok = False
    try:
        body(swarm)
        ok = True
    except Failed:
        pass
    except Exception as e:  # a harness error is a failure with its reason, never a hang
        print(f"FAIL harness error: {e!r}", flush=True)
    finally:
        swarm.cleanup()
        with open(os.path.join(folder, "timeline.jsonl"), "w") as f:
            for r in swarm.timeline.snapshot():
                f.write(json.dumps(r) + "\n")
    if ok and not keep:
        shutil.rmtree(folder, ignore_errors=True)
    elif not ok:
        print(f"run folder kept: {folder}", flush=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1
