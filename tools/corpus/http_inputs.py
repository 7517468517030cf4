"""Beyond the body: requests the HTTP layer must refuse cleanly.

Each a 4xx with a clean body, never a 500 (security review 2026-12, rows 3, 6, 7 and 10).
"""

# Valid ISO-8601 times whose conversion to UTC leaves datetime's range (years 1 to 9999).
EDGE_OF_RANGE_TIMES = (
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:30:00+14:00",
    "9999-12-31T23:00:00-05:00",
    "9999-12-31T23:30:00-01:00",
)
# Digits to `str.isdigit` that are not ASCII: superscript two, Arabic-Indic one, fullwidth five.
UNICODE_DIGIT_LIMITS = ("²", "١", "５", "1²")
# Console pages with a `limit` (query string after `?`, `{w}` a warehouse id).
CONSOLE_LIMIT_PAGES = ("/ui/warehouses/{w}", "/ui/movements", "/ui/losses", "/ui/dead-letters")
# Console pages with a time parameter, by parameter name.
CONSOLE_TIME_PARAMETERS = (("/ui/warehouses/{w}", "as_of"), ("/ui/losses", "from"), ("/ui/losses", "to"))
# Other spellings of a static file that exists (`{f}`): each is a 404, never another cached copy.
STATIC_SPELLINGS = (
    "vendor/./{f}",
    "vendor//{f}",
    "vendor/././{f}",
    "./vendor/{f}",
    "vendor/{f}/",
    "vendor/x/../{f}",
)
# Webhook requests a page on another site could make a browser send: Content-Type -> status.
WEBHOOK_CONTENT_TYPES = {
    "text/plain": 415,
    "text/plain;charset=UTF-8": 415,
    "application/x-www-form-urlencoded": 415,
    "multipart/form-data; boundary=x": 415,
    "application/jsonp": 415,
    "APPLICATION/JSON; charset=utf-8": 200,
}
# Headers of a browser's cross-site request (refused 403 on every state-changing route).
CROSS_SITE_HEADERS = (
    {"origin": "https://evil.example"},
    {"origin": "null"},
    {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
)
