"""OpenAPI v2 and v3 documents generated from the pydantic API types, as kube-apiserver publishes them.

- `build_v2(resources)`: Swagger 2.0 for `/openapi/v2`; `build_v2_protobuf(resources)`: the same as
  gnostic protobuf, which is what kubectl requests (`PROTOBUF_V2_MEDIA_TYPE`) and can parse.
- `build_v3_index(resources)`: `/openapi/v3`, each group-version's URL with `?hash=` of its document.
- `build_v3(resources, group, version)`: OpenAPI 3.0 for `/openapi/v3/apis/<group>/<version>`.
- `serialize(doc)` / `document_hash(doc)`: the bytes to serve and the hash the index uses for them.

Schemas come from the types (`schemas.py`), with list and map semantics (`kubellm.apis.listtypes`) and
constraints (`kubellm.apis.constraints`: required, enums, ranges, lengths, patterns) as the types declare
them; paths from `paths.py`, with the operations each resource's REST objects support. Results are cached
per set of resources.
"""

from kubellm.server.openapi.documents import (
    build_v2,
    build_v2_protobuf,
    build_v3,
    build_v3_index,
    document_hash,
    serialize,
    v3_path,
)
from kubellm.server.openapi.proto import MEDIA_TYPE as PROTOBUF_V2_MEDIA_TYPE
from kubellm.server.openapi.proto import MEDIA_TYPE_RESPONSE as PROTOBUF_V2_RESPONSE_MEDIA_TYPE

__all__ = [
    "PROTOBUF_V2_MEDIA_TYPE",
    "PROTOBUF_V2_RESPONSE_MEDIA_TYPE",
    "build_v2",
    "build_v2_protobuf",
    "build_v3",
    "build_v3_index",
    "document_hash",
    "serialize",
    "v3_path",
]
