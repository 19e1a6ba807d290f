from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson: for lists the routes build themselves and for errors."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
