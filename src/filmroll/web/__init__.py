"""``filmroll.web``: the admin UI and the OAuth callback (FastAPI). ``create_app(settings)`` builds it."""
