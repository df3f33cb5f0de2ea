"""Plain helpers shared by the tests (not test modules, no fixtures: those are in conftest.py).

`kiosk` (the kiosk app on a store and engine, a live uvicorn), `browser` (Debian's chromium
through Playwright), `consent` (a child process holding a store open), `provisioning`
(throwaway devices, in-process CLI runs), `devices` (free-port settings for test devices, the
daemon tests' device).
"""
