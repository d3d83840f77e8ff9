// An app that ends its process while it is being imported (a missing
// configuration handled with process.exit, say): no process of its group
// ever becomes ready.
process.exit(1);

export default function never(req, res) {
  res.end('never');
}
