"""The top floor: operating the system as a whole.

The `baton` command, the retention job, the contract documents and the operator tools that
read several services' schemas (explain, calibration). `ops` may import any service and
`shared`; no service and nothing in `shared` imports `ops` (tests may).
"""
