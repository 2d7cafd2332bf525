"""The S3 (and CloudWatch) endpoint: ``moto_server`` on loopback, with the images bucket created.

moto keeps everything in memory: a restart empties it. Chaos experiments do not restart it;
the bucket is (re)created after every first start so the importer never meets a missing one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import ClientError

from lab.stack.binaries import find_moto_server
from lab.stack.component import LAYER_SERVICE, Component, base_environment
from lab.stack.ports import PortAllocator

REGION = "us-east-1"
# moto accepts any credentials; fixed ones keep a developer's real AWS keys out of the lab.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "drill", "AWS_SECRET_ACCESS_KEY": "drill", "AWS_DEFAULT_REGION": REGION}


class MotoS3(Component):
    role = "s3"
    layer = LAYER_SERVICE
    stop_timeout = 10.0
    start_timeout = 60.0

    def __init__(
        self,
        *,
        log_dir: Path,
        bucket: str = "product-images",
        ports: PortAllocator | None = None,
        port: int | None = None,
        name: str = "s3",
        binary: Path | None = None,
        start_timeout: float | None = None,
    ) -> None:
        super().__init__(name, log_dir=log_dir, ports=ports, port=port, start_timeout=start_timeout)
        self.bucket = bucket
        self.binary = binary or find_moto_server()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [str(self.binary), "-H", self.host, "-p", str(self.port)]

    def environment(self) -> dict[str, str]:
        return {**base_environment(), **CREDENTIALS}

    def probe(self) -> str | None:
        response = httpx.get(f"{self.endpoint_url}/moto-api/", timeout=2.0)
        return None if response.status_code == 200 else f"status {response.status_code}"

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint (typed loosely: boto3's stubs are optional)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}),
        )

    def after_ready(self) -> None:
        client = self.client()
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError:
            client.create_bucket(Bucket=self.bucket)
