"""``filmroll.store``: tables, queries and migrations. The store never commits: callers own transactions."""
