"""Every read: stock (now and as of a past time), movements, losses per route, the summary, and the
models they answer with."""
