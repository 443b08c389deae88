"""``filmroll.service``: the use-cases (connect, refresh, disconnect), built on platform + store + vault."""
