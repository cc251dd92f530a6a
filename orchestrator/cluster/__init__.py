"""Hosts for the swarm backend: `clocklab cluster up|join|status|down`.

`join` makes real machines a cluster over ssh (or their contexts); `up` makes a
simulated one on this machine, or (--bare) only its hosts, for `join`.

Each host is a container of the host image (scripts/host-image.sh) running its
own Docker engine; host0 is the swarm manager, the others join it. The inner
engines also listen on unix sockets in a folder of this machine, which the
Docker contexts `clocklab-cluster` (the manager) and `clocklab-cluster-hostN`
point at, so the docker CLI and clocklab reach them as they would real hosts.

- `layout`: the names of everything a cluster is made of (one place).
- `host_image`: the host image, rebuilt only when its recipe changes.
- `hosts`: the host containers, their network, volumes and cgroup folders.
- `diagnosis`: why a nested engine cannot run, from what it said.
- `formation`: the swarm across the hosts, and the VM image on each.
- `machines`, `join`, `record`: machines named and checked, joined, and what join made.
- `contexts`: the Docker contexts.
- `lifecycle`: up (idempotent, undone on Ctrl-C) and down.
- `backend`: the swarm backend on a simulated cluster, with host faults.
- `status`: what runs, as a table.
- `cli`: the `clocklab cluster` commands.
"""
