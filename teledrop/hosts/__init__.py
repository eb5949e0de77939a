"""What every host shares: the HTTP pieces that need no web framework (body parsing,
content negotiation, error bodies, download headers, the OpenAPI document, the HTML pages
and their static files, the access log), and the hosts other than the WSGI app
(:mod:`teledrop.hosts.aws_lambda`).

Nothing here imports Flask or :mod:`teledrop.web`: the WSGI host imports these back.
"""
