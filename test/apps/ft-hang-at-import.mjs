// An app whose import never finishes (it awaits a connection that never
// comes): only startup-timeout ends its processes.
await new Promise(() => {});

export default function never(req, res) {
  res.end('never');
}
