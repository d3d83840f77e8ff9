// A CommonJS app that says which module instance answered, for the
// application-group tests (a .cjs file is CommonJS whatever package.json says).
const instance = Math.random().toString(36).slice(2);

module.exports = function fwInstance(req, res) {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ instance, pid: process.pid, url: req.url }));
};
