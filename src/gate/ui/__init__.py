"""``gate serve --ui``: the read-only web view of the decision log for auditors, and its JSON API."""
