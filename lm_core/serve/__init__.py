"""The job server: who trains a run, where, and what the web process keeps of it.

The engine (`lm_core`) trains one model; this package runs many of them for a
classroom. A page hands the `manager.JobManager` its trainers; a backend
(`thread_backend`, `process_backend`, `ray_backend`) trains them in lockstep
(`lockstep`) and tells the `job.Job` what happens through worker events
(`events`); the `store.RunStore` keeps every run across restarts. The engine
never imports this package.
"""
