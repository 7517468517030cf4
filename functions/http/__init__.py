"""The HTTP layer every HTTP function shares: app factory, error bodies, OpenAPI helpers, guards."""
