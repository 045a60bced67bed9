"""What-if routing on history (read-only): replay stored leads through a proposed policy.

``history`` holds the only SQL (SELECTs over the router's own schema); ``simulate`` replays
them in memory; ``run`` is what `baton simulate` and ``POST /v1/admin/simulate`` call.
Nothing here writes to the database. (The decision audit, `baton explain`, and the calibration
report read followup's schema too, so they are operator tools in `ops/`.)
"""
