"""The visitor web app: the gallery's front over the serving snapshot (``make serve``)."""
