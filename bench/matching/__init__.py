"""Dedupe quality, measured (issue #18): generated messy submissions with ground truth, run
through the real intake and router, scored by pairwise precision and recall of the merges."""
