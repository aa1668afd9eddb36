"""Sandbox emulators of YooKassa v3, TBank v2 and Tmetr (domain.md §6): ``app.create_app`` and the CLI."""
