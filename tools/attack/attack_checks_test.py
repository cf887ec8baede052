#!/usr/bin/env python3
"""Tests of the attack matrix's loss reference (ctest `attack_checks_test`): the mean of several
clean runs (attack_checks.pooled_clean) and the pooling of several matrix dirs (attack_pool.py).
Stdlib only; runs no node."""
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attack_checks as ac  # noqa: E402
import attack_pool  # noqa: E402


def clean_summary(losses, rss_kb=100_000):
    return {"steps": 100, "nodes": len(losses), "final_val_loss": {str(i): v for i, v in enumerate(losses)},
            "rss_kb": {str(i): rss_kb for i in range(len(losses))}}


def done_events(losses):
    return [{"kind": "event", "event": "done", "node": i, "val_loss": v} for i, v in losses.items()]


def loss_check(recs, honest, clean):
    rows = ac.check_run(recs, {i: "" for i in honest}, {i: 100_000 for i in honest}, {i: 0 for i in honest},
                        honest, [], clean, control=True)
    return next((ok, fig) for name, ok, fig in rows if name == "loss")


class PooledClean(unittest.TestCase):
    def test_mean_per_node_of_loss_and_rss(self):
        ref = ac.pooled_clean([clean_summary([2.0, 2.2], 100), clean_summary([2.2, 2.4], 300)])
        self.assertEqual(ref["runs"], 2)
        self.assertAlmostEqual(ref["final_val_loss"]["0"], 2.1)
        self.assertAlmostEqual(ref["final_val_loss"]["1"], 2.3)
        self.assertEqual(ref["rss_kb"], {"0": 200, "1": 200})

    def test_a_node_without_a_final_loss_in_one_run_has_none(self):
        a, b = clean_summary([2.0, 2.2]), clean_summary([2.2, 2.4])
        b["final_val_loss"]["1"] = None
        self.assertIsNone(ac.pooled_clean([a, b])["final_val_loss"]["1"])

    def test_one_run_is_its_own_reference(self):
        s = clean_summary([2.0, 2.2])
        self.assertEqual(ac.pooled_clean([s])["final_val_loss"], s["final_val_loss"])

    def test_the_loss_check_judges_against_the_mean(self):
        # 2.14 is +7% off the low run and -2.7% off the high one, +1.9% off their mean (2.1).
        low, high = clean_summary([2.0, 2.0]), clean_summary([2.2, 2.2])
        recs = done_events({0: 2.14, 1: 2.14})
        self.assertFalse(loss_check(recs, [0, 1], ac.pooled_clean([low]))[0])
        self.assertFalse(loss_check(recs, [0, 1], ac.pooled_clean([high]))[0])
        ok, fig = loss_check(recs, [0, 1], ac.pooled_clean([low, high]))
        self.assertTrue(ok, fig)
        self.assertIn("the mean of 2 clean runs", fig)
        self.assertFalse(loss_check(done_events({0: 2.15, 1: 2.15}), [0, 1], ac.pooled_clean([low, high]))[0])


def write_run(root, name, losses, steps=100, nodes=None):
    path = os.path.join(root, name)
    os.makedirs(path)
    with open(os.path.join(path, "summary.json"), "w") as f:
        json.dump({"steps": steps, "nodes": nodes or len(losses)}, f)
    with open(os.path.join(path, "timeline.jsonl"), "w") as f:
        for r in done_events(losses):
            f.write(json.dumps(r) + "\n")
    return path


class Pool(unittest.TestCase):
    def pool(self, *dirs):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = attack_pool.main(list(dirs) + ["--steps", "100"])
        return rc, out.getvalue()

    def test_rows_and_clean_runs_of_several_dirs_are_pooled(self):
        with tempfile.TemporaryDirectory() as t:
            a, b = os.path.join(t, "a"), os.path.join(t, "b")
            write_run(a, "clean", {0: 2.0, 1: 2.0, 2: 2.0})
            write_run(b, "clean", {0: 2.2, 1: 2.2, 2: 2.2})
            # flip x1 (node 2 the attacker): its honest nodes +1.0 % and +2.0 % of the clean mean
            # 2.1 in its two runs, +1.5 % together.
            write_run(a, "flip-1", {0: 2.121, 1: 2.121, 2: 9.0}, nodes=3)
            write_run(b, "flip-1", {0: 2.142, 1: 2.142, 2: 9.0}, nodes=3)
            write_run(a, "noise-1", {0: 2.12, 1: 2.12}, nodes=3)
            write_run(a, "other-length-1", {0: 9.0, 1: 9.0}, steps=200, nodes=3)
            rc, text = self.pool(a, b)
            self.assertEqual(rc, 0, text)
            self.assertIn("2 clean runs", text)
            self.assertRegex(text, r"\| flip \| 1 \| 2 \| \+1\.00%, \+2\.00% \| PASS: 2\.1315 vs 2\.1000 \(\+1\.50%\)")
            self.assertRegex(text, r"\| noise \| 1 \| 1 \| \+0\.95% \| PASS")
            self.assertNotIn("other-length", text)

    def test_a_copied_clean_run_counts_once_and_a_row_outside_the_bound_fails(self):
        with tempfile.TemporaryDirectory() as t:
            a, b = os.path.join(t, "a"), os.path.join(t, "b")
            write_run(a, "clean", {0: 2.0, 1: 2.0})
            write_run(b, "clean", {0: 2.0, 1: 2.0})  # attack.py --reuse-clean on a copy: the same run
            write_run(b, "clean-repeat", {0: 2.06, 1: 2.06})
            write_run(b, "replay-1", {0: 2.1}, nodes=2)
            rc, text = self.pool(a, b)
            self.assertEqual(rc, 1, text)
            self.assertIn("2 clean runs", text)
            self.assertRegex(text, r"\| replay \| 1 \| 1 \| \+3\.45% \| FAIL")

    def test_a_row_missing_an_honest_nodes_loss_fails(self):
        with tempfile.TemporaryDirectory() as t:
            write_run(t, "clean", {0: 2.0, 1: 2.0, 2: 2.0})
            write_run(t, "sybil-1", {0: 2.0}, nodes=3)
            rc, text = self.pool(t)
            self.assertEqual(rc, 1, text)
            self.assertIn("without every honest node's final loss", text)


if __name__ == "__main__":
    unittest.main()
