"""Registration figures for organisers: counted in SQL, drawn as accessible SVG on the server."""
