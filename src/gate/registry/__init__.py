"""The OCI distribution API client, shared by promotion (image copies) and policy bundles (push, pull).

- ``hosts``: how a registry is reached (scheme, Docker Hub's API host, credential key);
- ``auth``: Docker config credentials and the registry's ``WWW-Authenticate`` challenge;
- ``client``: one repository on one registry: manifests and blobs (get, put, head), uploads, digest checks.

What a reference *is* stays ``gate.imageref``'s; what is copied or pulled is the callers' business.
"""
