#!/usr/bin/env bash
# Fails when docs/events.md and the code disagree about the `noloco run --json` events: a kind
# emitted (`{"event", "NAME"}` under trainer/ or cli/) that the page has no "## `NAME`" section
# for, a section for a kind nothing emits, or a field of an emitted event (`{"field", ...}` in the
# same JSON literal, or `ev["field"] = ...` added to it) missing from its section's table.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - "$@" <<'PY'
import re, subprocess, sys

files = subprocess.run(["git", "ls-files", "trainer/*.cc", "cli/*.cc"], capture_output=True, text=True,
                       check=True).stdout.split()
doc = open("docs/events.md").read()
sections = {}
for m in re.finditer(r"^## `([a-z_]+)`\n(.*?)(?=^## |\Z)", doc, re.S | re.M):
    sections[m.group(1)] = set(re.findall(r"^\| `([a-z_]+)` \|", m.group(2), re.M))

def literal_end(text, start):
    """Index just past the brace that closes the JSON literal opened before `start`."""
    depth = 0
    i = text.rfind("{", 0, start)  # the '{' of the whole literal: `{{"event", ...`
    for j in range(i, len(text)):
        if text[j] == "{": depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0: return j + 1
    return len(text)

emitted = {}
for f in files:
    text = open(f).read()
    for m in re.finditer(r'\{"event",\s*"([a-z_]+)"\}', text):
        name = m.group(1)
        body = text[m.start():literal_end(text, m.start())]
        fields = set(re.findall(r'\{"([a-z_]+)",', body)) - {"event"}
        # Fields added later to a named event object: `ev["val_loss"] = ...`.
        decl = re.search(r'json\s+(\w+)\s*=\s*$', text[:m.start()].rstrip("{ \n"))
        if decl:
            fields |= set(re.findall(r'\b' + decl.group(1) + r'\["([a-z_]+)"\]\s*=', text))
        emitted.setdefault(name, (f, set()))[1].update(fields)

errors = []
for name, (f, fields) in sorted(emitted.items()):
    if name not in sections:
        errors.append(f"{f} emits event '{name}', which docs/events.md does not describe")
        continue
    for field in sorted(fields - sections[name]):
        errors.append(f"{f}: event '{name}' has field '{field}', missing from its table in docs/events.md")
for name in sorted(set(sections) - set(emitted)):
    errors.append(f"docs/events.md describes event '{name}', which no code under trainer/ or cli/ emits")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"events doc: {len(emitted)} kinds, all described")
PY
