"""Closing the scoring loop: outcomes per score band, stage, source and rule, rejections by
reason, cost per qualified opportunity, a suggested threshold, its gauges and its PNG plot."""
