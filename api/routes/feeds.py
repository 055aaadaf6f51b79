"""Ecosystem feeds: GTFS-Realtime VehiclePositions from signed bus telemetry."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from google.transit import gtfs_realtime_pb2

from ..deps import DashboardDep, TelemetryUser

router = APIRouter(prefix="/gtfs-rt", tags=["feeds"])

PROTOBUF = "application/x-protobuf"


@router.get(
    "/vehicle-positions",
    response_class=Response,
    responses={200: {"content": {PROTOBUF: {}}, "description": "a GTFS-RT FeedMessage"}},
)
async def vehicle_positions(*, dashboard: DashboardDep, user: TelemetryUser) -> Response:
    """Newest position, speed and time of every bus the caller sees (GTFS-RT 2.0 protobuf).

    Each value comes from a device-signed message; the entity id is the bus id, so a
    consumer can ask ``/api/proofs/assets/{id}`` for the proof behind it.
    """
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    feed.header.timestamp = time.time_ns() // 1_000_000_000
    for device in await dashboard.devices():
        window = user.default_window(device.device_id, device.fleet)
        if device.kind != "bus" or window is None:
            continue
        sample = await dashboard.latest_sample("bus", device.device_id, window)
        if not sample:
            continue
        entity = feed.entity.add()
        entity.id = device.device_id
        vehicle = entity.vehicle
        vehicle.vehicle.id = device.device_id
        vehicle.position.latitude = float(sample["lat_deg"])
        vehicle.position.longitude = float(sample["lon_deg"])
        vehicle.position.speed = float(sample["speed_mps"])
        vehicle.position.odometer = float(sample["odometer_m"])
        vehicle.timestamp = int(sample["t_ms"]) // 1000
    return Response(content=feed.SerializeToString(), media_type=PROTOBUF)
