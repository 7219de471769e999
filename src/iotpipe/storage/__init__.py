"""Storage: the `iotpipe.model.Store` port on SQL engines (docs/architecture.md, "Storage").

`store.SqlStore` composes the concerns (`ledger`, `categories`, `datasets`, `readings`) over a
`dialect.SqlDialect`; `mysql` and `sqlite` are the adapters.
"""
