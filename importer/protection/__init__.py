"""How the importer protects its providers and itself: rate limits, circuit breakers, queue
health and backpressure, VIP priority, the emergency brake, and the counters they share.

State lives in Redis so that every worker, API process and operator command sees the same
limits, breakers and pause flag; see docs/protection.md for the operator's view.
"""
