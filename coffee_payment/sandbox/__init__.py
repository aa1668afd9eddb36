"""Sandbox emulators of YooKassa v3, TBank v2 and Tmetr (docs/domain.md §6): ``app.create_app`` and the CLI."""
