"""The fault suite: `make chaos` (infra/scripts/chaos.sh runs `python -m tools.chaos.run`)."""
