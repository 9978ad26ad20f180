"""torch_reference.py's net, chains and update, driven line by line from ``run.py``.

It runs in its own process, so that PyTorch's threads and XLA's never share one, and answers
each command on stdin with one JSON line: ``update`` and ``langevin`` (seconds of one call, the
device synchronised), ``peak`` (the CUDA allocator's peak in bytes, after a reset and an
update), ``quit``. Its update is torch_reference.py's: chains from ``langevin``, then Adam on
mean f(chains) - mean f(data + 0.03 eps).

  python benchmarks/torch_worker.py REFERENCE IMAGE_SIZE NF BATCH STEPS LANGEVIN_STEPS DEVICE
"""
import importlib.util
import json
import sys
import time


def main():
    path, image_size, nf, batch, steps, langevin_steps, device = sys.argv[1:8]
    spec = importlib.util.spec_from_file_location("torch_reference", path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    torch = ref.torch
    torch.manual_seed(0)
    dev = torch.device(device)
    net = ref.energy_net(int(image_size), int(nf)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999))
    data = torch.rand(int(batch), 3, int(image_size), int(image_size), device=dev) * 2 - 1

    def chains(k):
        for q in net.parameters():
            q.requires_grad_(False)
        x = ref.langevin(net, torch.rand_like(data) * 2 - 1, k, 1.0, 0.01)
        for q in net.parameters():
            q.requires_grad_(True)
        return x

    def update():
        x = chains(int(steps))
        loss = net(x).mean() - net(data + 0.03 * torch.randn_like(data)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    def timed(fn):
        t = time.perf_counter()
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}),
          flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "update":
            out = timed(update)
        elif cmd == "langevin":
            out = timed(lambda: chains(int(langevin_steps)))
        elif cmd == "peak":
            torch.cuda.reset_peak_memory_stats()
            timed(update)
            out = torch.cuda.max_memory_allocated()
        else:
            break
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
