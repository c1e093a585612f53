"""Render result.json into HTML reports and exports. Never imports TensorFlow."""
