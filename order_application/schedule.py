#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0", "pydantic==2.14.4", "cryptography==50.0.2"]
# ///
"""Creates, lists or deletes a Temporal Schedule that places an order every N seconds."""

import argparse
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleSpec,
)
from temporalio.service import RPCError, RPCStatusCode

from command_line.exit import EXIT_OK, run
from command_line.order_options import (
    ORDER_ID_LENGTH,
    add_order_arguments,
    order_from_arguments,
    positive_seconds,
    safe_id,
)
from local.errors import UserError
from local.printable import printable
from shop.rules import format_cents

DEFAULT_SCHEDULE_ID = "order-schedule"
# The workflow ID of each order a schedule places is `<schedule ID>-order-<scheduled time>`: the
# server appends the time, as in this example of its own.
ORDERS_SUFFIX = "-order"
SCHEDULED_TIME = "-2009-11-10T23:00:00Z"
SCHEDULE_ID_LENGTH = ORDER_ID_LENGTH - len(ORDERS_SUFFIX + SCHEDULED_TIME)


def schedule_id_argument(text: str) -> str:
    """A schedule ID whose orders' IDs keep to the order ID rule too."""
    return safe_id("a schedule ID", text, SCHEDULE_ID_LENGTH)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="place the same order every N seconds")
    add_order_arguments(create)
    create.add_argument("--every", metavar="SECONDS", type=positive_seconds, default=60.0)
    create.add_argument(
        "--schedule-id",
        type=schedule_id_argument,
        default=DEFAULT_SCHEDULE_ID,
        help=f"up to {SCHEDULE_ID_LENGTH} characters; its orders are ID{ORDERS_SUFFIX}-<time>"
        " (default %(default)s)",
    )
    commands.add_parser("list", help="list schedules and their recent orders")
    delete = commands.add_parser("delete", help="delete a schedule (orders it placed carry on)")
    # Any ID, as approve.py takes any order ID: the schedule may have been made elsewhere.
    delete.add_argument("schedule_id", nargs="?", default=DEFAULT_SCHEDULE_ID)
    args = parser.parse_args()
    if args.command == "create":
        args.order = order_from_arguments(create, args)
    return args


async def create(client: Client, args: argparse.Namespace, task_queue: str) -> None:
    # Only creating needs the workflow, so only creating imports it.
    from workflow import OrderWorkflow

    schedule = Schedule(
        # Each run's workflow ID is this ID plus the scheduled time, so every order is its own.
        action=ScheduleActionStartWorkflow(
            OrderWorkflow.run,
            args.order,
            id=f"{args.schedule_id}{ORDERS_SUFFIX}",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=args.every))]),
    )
    try:
        await client.create_schedule(args.schedule_id, schedule)
    except ScheduleAlreadyRunningError as err:
        raise UserError(f"schedule {args.schedule_id} already exists; delete it first") from err
    print(
        f"Schedule {args.schedule_id} places an order every {args.every:g} s"
        f" ({format_cents(args.order.total_cents)} for {args.order.customer})."
    )


async def list_schedules(client: Client) -> None:
    found = False
    async for listed in await client.list_schedules():
        found = True
        description = await client.get_schedule_handle(listed.id).describe()
        recent = [
            result.action.workflow_id
            for result in description.info.recent_actions[-3:]
            if isinstance(result.action, ScheduleActionExecutionStartWorkflow)
        ]
        upcoming = description.info.next_action_times[:1]
        # Schedules and their workflows may have been made by any client: their IDs are escaped.
        print(printable(f"{listed.id}: {description.info.num_actions} orders placed"))
        if upcoming:
            print(f"  next order at {upcoming[0]:%H:%M:%S}")
        for workflow_id in recent:
            print(printable(f"  recent: {workflow_id}"))
    if not found:
        print("No schedules.")


async def delete(client: Client, schedule_id: str) -> None:
    try:
        await client.get_schedule_handle(schedule_id).delete()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise UserError(f"no schedule with ID {schedule_id}") from err
        raise
    print(printable(f"Deleted schedule {schedule_id}; orders it placed carry on."))


async def main() -> int:
    args = parse_args()
    # Imported once the arguments are parsed: it loads Pydantic, which --help and a usage error
    # do without.
    from command_line.connection import connect, load_settings

    settings = load_settings()
    client = await connect(settings)
    if args.command == "create":
        await create(client, args, settings.task_queue)
    elif args.command == "list":
        await list_schedules(client)
    else:
        await delete(client, args.schedule_id)
    return EXIT_OK


if __name__ == "__main__":
    run(main)
