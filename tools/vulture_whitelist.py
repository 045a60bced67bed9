"""Names vulture cannot see being used, because a framework, a file format or a wire contract
reads them. `make lint` runs vulture ([tool.vulture] in pyproject.toml) over the code, the
tests and this file; a name listed here counts as used. Add a name only with who reads it.

Not imported or run by anything: vulture parses it, so `_` stands for any object.
"""

# Settings read by name: deploy/local/run.py takes getattr(settings, f"{name}_port").
_.intake_port
_.router_port
_.followup_port
_.notify_port

# Event payload fields: part of the published contract (docs/asyncapi.yaml); consumers outside
# Baton read them, and the CloudEvents envelope requires datacontenttype.
_.seconds_overdue
_.escalated_at
_.datacontenttype

# HTTP response body fields (pydantic response models, in docs/openapi/*.json): read by clients.
_.replayed  # notify's Replayed
_.previous_status
_.was_disabled  # notify's Enabled

# Policy YAML keys (WeekHours): pydantic fills them, as_mapping() reads them through DAYS.
_.mon
_.tue
_.wed
_.thu
_.fri

# Lead fields copied into lead.received by field list (lead.py `_shallow`), never read by name.
_.chat_message

# The structured logger's level set (debug beside info/warning/error), kept for callers.
_.debug

# Parameters a protocol fixes: __aexit__'s traceback, aiokafka's rebalance listener argument.
_.tb
_.revoked
