// Env-file tests: the daemon process's variables whose names start with EF_.
export default {
  fetch(): Response {
    return Response.json(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('EF_'))));
  },
};
