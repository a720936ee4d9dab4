"""coordination.k8s.io/v1: Lease, served by a standalone KubeLLM for leader election."""

from kubellm.apis.coordination.v1.types import GROUP, VERSION, Lease, LeaseSpec
from kubellm.apis.core.v1.validation import micro_time
from kubellm.apis.scheme import ResourceInfo
from kubellm.apis.validation import declared
from kubellm.apis.validation.field import ErrorList, Path


def validate_lease(obj: Lease) -> ErrorList:
    errs = declared.validate(obj.spec, Path("spec"))
    errs += micro_time(obj.spec.acquire_time, Path("spec").child("acquireTime"))
    errs += micro_time(obj.spec.renew_time, Path("spec").child("renewTime"))
    return errs


def validate_lease_update(new: Lease, old: Lease) -> ErrorList:
    return validate_lease(new)


RESOURCES: list[ResourceInfo] = [
    ResourceInfo(group=GROUP, version=VERSION, kind="Lease", plural="leases", singular="lease", namespaced=True,
                 model=Lease, categories=(), host_kind=True, has_status=False, validate=validate_lease,
                 validate_update=validate_lease_update),
]

__all__ = ["GROUP", "RESOURCES", "VERSION", "Lease", "LeaseSpec"]
