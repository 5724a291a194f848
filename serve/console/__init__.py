"""The web console of spec §13: flows, runs, conversations and a test chat, in the browser.

``csflow serve`` serves it under the ``path`` of a ``type: console`` entry of channels.yaml
(``channel.ConsoleMount``). Its modules, outside in:

- ``channel``: the entry: users' passwords, the signing key, the project it shows;
- ``app``: the Starlette app, its routes and templates (``Console``);
- ``guard``: the one door every request passes (session, CSRF, security headers);
- ``auth``: users, the signed session cookie, the sign-in throttle; ``signin``: its pages;
- ``pages``: flows and runs; ``talk``: conversations and the test chat (``chat.say``);
- ``data``: what the pages read from the store; ``present``: how values read in a page.
"""
