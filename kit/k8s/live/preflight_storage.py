"""Preflight, storage: can the StorageClass behind each of the plan's volumes give the access mode it asks for?

A claim without ``storageClassName`` gets the default StorageClass (annotation
``storageclass.kubernetes.io/is-default-class: "true"``); without one it stays Pending. Whether a class
can give ``ReadWriteMany`` depends on its provisioner. The table below is what each driver documents
(Kubernetes, "Persistent Volumes", *Access Modes*: https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes,
and each driver's own documentation, linked); an unknown provisioner is a warning, not a verdict.
"""

from __future__ import annotations

from typing import Any

from kit.k8s.live.preflight import FAIL, OK, READ_ACCESS, WARN, Answer, Check

AREA = "storage"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
RWX, RWO = "ReadWriteMany", "ReadWriteOnce"
STORAGE_CLASSES = "/apis/storage.k8s.io/v1/storageclasses"

#: Provisioners that give a volume to one node at a time (block devices, node-local paths): no ReadWriteMany.
RWO_ONLY: dict[str, str] = {
    # kind's default class "standard"; refuses RWX: "NodePath only supports ReadWriteOnce and ReadWriteOncePod"
    "rancher.io/local-path": "https://github.com/rancher/local-path-provisioner#readme",
    "kubernetes.io/no-provisioner": "https://kubernetes.io/docs/concepts/storage/volumes/#local",
    "kubernetes.io/aws-ebs": "https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes",
    "ebs.csi.aws.com": "https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/parameters.md",
    "kubernetes.io/gce-pd": "https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes",
    "pd.csi.storage.gke.io": "https://cloud.google.com/kubernetes-engine/docs/concepts/persistent-volumes",
    "kubernetes.io/azure-disk": "https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes",
    "disk.csi.azure.com": "https://learn.microsoft.com/azure/aks/azure-disk-csi",
    "kubernetes.io/cinder": "https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes",
    "cinder.csi.openstack.org": "https://github.com/kubernetes/cloud-provider-openstack/tree/master/docs/cinder-csi-plugin",
}
#: Provisioners of shared file systems: ReadWriteMany works.
RWX_CAPABLE: dict[str, str] = {
    "nfs.csi.k8s.io": "https://github.com/kubernetes-csi/csi-driver-nfs#readme",
    "k8s-sigs.io/nfs-subdir-external-provisioner":
        "https://github.com/kubernetes-sigs/nfs-subdir-external-provisioner#readme",
    "efs.csi.aws.com": "https://github.com/kubernetes-sigs/aws-efs-csi-driver#readme",
    "filestore.csi.storage.gke.io": "https://cloud.google.com/filestore/docs/csi-driver",
    "kubernetes.io/azure-file": "https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes",
    "file.csi.azure.com": "https://learn.microsoft.com/azure/aks/azure-files-csi",
    "cephfs.csi.ceph.com": "https://github.com/ceph/ceph-csi/blob/devel/docs/cephfs/deploy.md",
    "driver.longhorn.io": "https://longhorn.io/docs/latest/nodes-and-volumes/volumes/rwx-volumes/",
}
#: Words in a provisioner's name that mean a shared file system (a custom-named NFS provisioner, say).
RWX_WORDS = ("nfs", "cephfs", "efs", "filestore", "azure-file")


def rwx_support(provisioner: str) -> tuple[bool | None, str]:
    """(can it give ReadWriteMany, why): True / False from the table, None when unknown."""
    if provisioner in RWO_ONLY:
        return False, f"{provisioner} gives a volume to one node at a time ({RWO_ONLY[provisioner]})"
    if provisioner in RWX_CAPABLE:
        return True, f"{provisioner} is a shared file system ({RWX_CAPABLE[provisioner]})"
    if any(word in provisioner.lower() for word in RWX_WORDS):
        return True, f"{provisioner} looks like a shared file system (by its name)"
    return None, f"the kit does not know whether {provisioner} gives ReadWriteMany"


def claims(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plan's PersistentVolumeClaims."""
    return [doc for doc in documents if doc.get("kind") == "PersistentVolumeClaim"]


def default_class(classes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The StorageClass a claim without ``storageClassName`` gets (the newest default, as the API server picks)."""
    defaults = [c for c in classes if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true"]
    defaults.sort(key=lambda c: str(c["metadata"].get("creationTimestamp", "")))
    return defaults[-1] if defaults else None


def check_claim(claim: dict[str, Any], classes: list[dict[str, Any]], schedulable_nodes: int) -> Check:
    """One claim against the cluster's StorageClasses."""
    name = claim["metadata"]["name"]
    spec = claim.get("spec") or {}
    modes = list(spec.get("accessModes") or [RWO])
    wanted = spec.get("storageClassName")
    if wanted is None:
        chosen = default_class(classes)
        if chosen is None:
            return Check(AREA, f"claim {name}", FAIL, "no default StorageClass: the claim would stay Pending",
                         "mark one default: `kubectl patch storageclass NAME -p '{\"metadata\":{\"annotations\":"
                         f"{{\"{DEFAULT_CLASS}\":\"true\"}}}}}}'`")
    else:
        chosen = next((c for c in classes if c["metadata"]["name"] == wanted), None)
        if chosen is None:
            return Check(AREA, f"claim {name}", FAIL, f"StorageClass {wanted!r} does not exist",
                         f"create it, or build the plan with a class that exists ({_names(classes)})")
    class_name, provisioner = chosen["metadata"]["name"], str(chosen.get("provisioner", ""))
    found = f"{'/'.join(modes)} on {class_name} ({provisioner})"
    if RWX in modes:
        capable, why = rwx_support(provisioner)
        if capable is False:
            return Check(AREA, f"claim {name}", FAIL, f"{found}: {why}",
                         "install a ReadWriteMany class (NFS, CephFS, EFS, Filestore, Azure Files) and make it "
                         "the default, or use a one-node overlay (ReadWriteOnce)")
        if capable is None:
            return Check(AREA, f"claim {name}", WARN, f"{found}: {why}",
                         "check its documentation for ReadWriteMany, or try a claim by hand")
        return Check(AREA, f"claim {name}", OK, f"{found}: {why}")
    if schedulable_nodes > 1:
        return Check(AREA, f"claim {name}", WARN,
                     f"{found}, shared by several pods on a {schedulable_nodes}-node cluster: every pod that "
                     "mounts it must run on the same node",
                     "use an overlay with ReadWriteMany volumes on a cluster of several nodes")
    return Check(AREA, f"claim {name}", OK, found)


def _names(classes: list[dict[str, Any]]) -> str:
    return ", ".join(c["metadata"]["name"] for c in classes) or "none exist"


def check_storage(documents: list[dict[str, Any]], classes: Answer, schedulable_nodes: int) -> list[Check]:
    """Every claim of the plan against the StorageClassList."""
    wanted = claims(documents)
    if not wanted:
        return []
    if not classes.ok:
        return [Check(AREA, "storage classes", WARN, f"cannot list StorageClasses: {classes.message}",
                      READ_ACCESS)]
    return [check_claim(claim, classes.items(), schedulable_nodes) for claim in wanted]
