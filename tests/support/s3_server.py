"""A real S3-compatible HTTP server for tests: moto's server (``moto[server]``) in a thread on 127.0.0.1.

    with serve_s3() as s3:
        s3.client.create_bucket(Bucket="results")
        settings = load_settings(results_url="s3://results/prefix", results_storage_options=s3.options)

It speaks the S3 REST API over HTTP like MinIO or AWS would (s3fs and boto3 talk to it through
``endpoint_url``), keeps everything in memory and accepts any credentials.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

KEY, SECRET, REGION = "testing", "testing", "us-east-1"


@dataclass
class S3Server:
    endpoint: str

    @property
    def options(self) -> dict[str, Any]:
        """fsspec/s3fs options (the backend's ``results_storage_options``) for this server."""
        return {"endpoint_url": self.endpoint, "key": KEY, "secret": SECRET,
                "client_kwargs": {"region_name": REGION}}

    @property
    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY,
                            aws_secret_access_key=SECRET, region_name=REGION)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@contextlib.contextmanager
def serve_s3() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
