"""Everything in the pipeline that writes: jobs, schedules, and (with their issues) the steps."""
