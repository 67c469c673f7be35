// An express app. With no argument it starts, answers one request it makes to itself on
// 127.0.0.1 and prints the response (what the image's test runs); with `serve` it keeps
// listening on port 3000.
const express = require('express');
const http = require('node:http');

const app = express();
app.get('/', (request, response) => {
  response.send(`Hello from express ${require('express/package.json').version}`);
});

const server = app.listen(process.argv[2] === 'serve' ? 3000 : 0, '127.0.0.1', () => {
  if (process.argv[2] === 'serve') return;
  http.get({ host: '127.0.0.1', port: server.address().port, path: '/' }, (response) => {
    let body = '';
    response.on('data', (chunk) => (body += chunk));
    response.on('end', () => {
      console.log(response.statusCode, body);
      server.close();
    });
  });
});
