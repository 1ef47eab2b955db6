"""One router per resource; :func:`control_plane.app.create_app` composes them (``ROUTERS``)."""
