#!/usr/bin/env python3
"""Write vigil's OCI image as an OCI image layout directory, without Docker.

The image is the "compat" variant Istio's image fetcher accepts: one
application/vnd.oci.image.layer.v1.tar+gzip layer holding plugin.wasm.
Every byte is a function of the .wasm alone (fixed mtimes, owners, gzip
header, JSON key order), so the manifest digest is reproducible and can be
pinned in a WasmPlugin's sha256 before the image is pushed.

Usage: oci_image.py --wasm dist/vigil.wasm --out dist/oci --tag 0.1.0
Prints the manifest digest. Standard library only: runs wherever python3 does.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
PLUGIN_FILE = "plugin.wasm"


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def layer_tar(wasm):
    """An uncompressed tar with plugin.wasm only, owned by root, mtime 0."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(PLUGIN_FILE)
        info.size = len(wasm)
        info.mode = 0o644
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(wasm))
    return out.getvalue()


def gzipped(data):
    # mtime=0 and no file name keep the gzip header constant.
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return out.getvalue()


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type, data, annotations=None):
    desc = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if annotations:
        desc["annotations"] = annotations
    return desc


def build(wasm, tag):
    """Returns (blobs by digest, index.json bytes, manifest digest)."""
    tar = layer_tar(wasm)
    layer = gzipped(tar)
    config = canonical_json({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(CONFIG_MEDIA_TYPE, config),
        "layers": [descriptor(LAYER_MEDIA_TYPE, layer)],
        "annotations": {
            "org.opencontainers.image.title": "vigil",
            "org.opencontainers.image.version": tag,
        },
    })
    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [descriptor(MANIFEST_MEDIA_TYPE, manifest,
                                 {"org.opencontainers.image.ref.name": tag})],
    })
    blobs = {sha256_digest(b): b for b in (layer, config, manifest)}
    return blobs, index, sha256_digest(manifest)


def write_layout(out_dir, blobs, index):
    # Written beside the target and swapped in, so a failed run never leaves
    # a half-written layout (or stale blobs of an earlier build) behind.
    tmp = out_dir.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "blobs", "sha256"))
    with open(os.path.join(tmp, "oci-layout"), "wb") as f:
        f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    with open(os.path.join(tmp, "index.json"), "wb") as f:
        f.write(index)
    for digest, data in blobs.items():
        with open(os.path.join(tmp, "blobs", "sha256", digest.split(":", 1)[1]), "wb") as f:
            f.write(data)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", required=True, help="the filter module, e.g. dist/vigil.wasm")
    parser.add_argument("--out", required=True, help="layout directory to (re)create, e.g. dist/oci")
    parser.add_argument("--tag", required=True, help="tag recorded in index.json, e.g. 0.1.0")
    args = parser.parse_args(argv)

    try:
        with open(args.wasm, "rb") as f:
            wasm = f.read()
    except OSError as err:
        print(f"error: cannot read {args.wasm}: {err.strerror} (run `make wasm` first)", file=sys.stderr)
        return 1
    if not wasm.startswith(b"\0asm"):
        print(f"error: {args.wasm} is not a WebAssembly module", file=sys.stderr)
        return 1

    blobs, index, manifest_digest = build(wasm, args.tag)
    write_layout(args.out, blobs, index)
    print(f"{args.out}: OCI image layout, tag {args.tag}, {len(wasm)} byte {PLUGIN_FILE}")
    print(f"manifest digest {manifest_digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
