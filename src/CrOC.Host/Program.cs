using CrOC.Host;

return Cli.Run(args);
