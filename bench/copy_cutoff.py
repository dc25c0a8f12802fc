#!/usr/bin/env python3
"""Measures whether parallel UploadPartCopy beats one CopyObject, by object size, against an
S3 endpoint (default: the local moto server scripts/test starts; point it at real S3 with
S3_ENDPOINT="" and real credentials for production numbers).

Usage: bench/copy_cutoff.py [endpoint]   (sizes in MiB: 8 32 64 128 256; parts 8 MiB... 64 MiB, 8 in parallel)
Prints one line per size and method: seconds, MiB/s. The cut-off `multipart_threshold_mib`
is the smallest size from which parts win.
"""
import concurrent.futures
import os
import sys
import time
import uuid

import boto3

MIB = 1024 * 1024
endpoint = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TEST_S3_ENDPOINT", "http://127.0.0.1:5000")
s3 = boto3.client("s3", endpoint_url=endpoint or None, region_name="us-east-1",
                  aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                  aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))
src, dst = f"bench-src-{uuid.uuid4().hex[:8]}", f"bench-dst-{uuid.uuid4().hex[:8]}"
s3.create_bucket(Bucket=src)
s3.create_bucket(Bucket=dst)


def copy_object(key):
    s3.copy_object(Bucket=dst, Key=key + ".single", CopySource={"Bucket": src, "Key": key})


def copy_parts(key, size, part):
    up = s3.create_multipart_upload(Bucket=dst, Key=key + ".parts")["UploadId"]
    ranges = [(i, min(i + part, size) - 1) for i in range(0, size, part)]

    def one(n_range):
        n, (a, b) = n_range
        r = s3.upload_part_copy(Bucket=dst, Key=key + ".parts", UploadId=up, PartNumber=n,
                                CopySource={"Bucket": src, "Key": key}, CopySourceRange=f"bytes={a}-{b}")
        return {"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]}

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        parts = list(pool.map(one, enumerate(ranges, 1)))
    s3.complete_multipart_upload(Bucket=dst, Key=key + ".parts", UploadId=up, MultipartUpload={"Parts": parts})


for mib in (8, 32, 64, 128, 256):
    key = f"obj-{mib}"
    s3.put_object(Bucket=src, Key=key, Body=os.urandom(mib * MIB))
    t = time.perf_counter(); copy_object(key); single = time.perf_counter() - t
    print(f"{mib:4d} MiB  CopyObject          {single:6.2f} s  {mib / single:8.1f} MiB/s", flush=True)
    for part in (8, 16, 64):
        if part >= mib:
            continue
        t = time.perf_counter(); copy_parts(key, mib * MIB, part * MIB); parts = time.perf_counter() - t
        print(f"{mib:4d} MiB  UploadPartCopy {part:2d}MiB {parts:6.2f} s  {mib / parts:8.1f} MiB/s", flush=True)
    s3.delete_object(Bucket=src, Key=key)
