"""The hackathon half of the kit: event file, team resources, JupyterHub values (organisers), scorer and board."""
