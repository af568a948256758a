"""``gate serve --ui``: the auditors' read-only web view over the decision log and its JSON API.

app (routing, auth, headers, static files) → api (the JSON payloads) → queries (URL → DecisionQuery);
pages/html/charts draw HTML from the API's payloads.
"""
