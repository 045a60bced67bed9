"""What-if routing on history and the decision audit (operator tools, read-only).

``history`` holds the only SQL (SELECTs over the router schema, plus the followup schema for
the audit and calibration: an operator tool may read it, a service never does); ``simulate``
replays stored leads through a proposed policy in memory; ``explain`` turns one lead's stored
decisions into a timeline in plain words. Nothing here writes to the database.
"""
