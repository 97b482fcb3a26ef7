"""The four clinicflow services: intake, planner, scheduler, notifier."""
