"""Lambda function: the monitoring console (/ui/), its static files, the API docs and the JSON reports."""
