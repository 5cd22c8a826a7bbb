"""Pages of privacy: the officers' pages (staff.py) and the customers' public pages (public.py)."""
