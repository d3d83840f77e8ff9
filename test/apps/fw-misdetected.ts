// A fetch handler whose parameters do not say which style it is: sluice
// calls it Node style, and it returns a Response. The client must get a 500
// and the error log the fix, not wait forever.
export default function handler(request: unknown, extra: unknown): Response {
  void request;
  void extra;
  return new Response('answered fetch style');
}
