"""libvirt-LXC domains: the same Container rows, list, detail page and terminal as LXC containers,
with their own XML model (domain_xml), forms, services, agent handlers, inventory sync and views."""
